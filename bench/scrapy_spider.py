"""scrapy_spider.py - the benchmark's Scrapy peer, compared with `fetchtree
run` (bench/transform.lua): fetch every URL in the file given as -a urls=FILE
with 64 requests in flight, decode each body as JSON, count the items.
Prints "items N" on stdout when the spider closes.
    scrapy runspider bench/scrapy_spider.py -a urls=FILE
Throttling, robots.txt, cookies, the HTTP cache and the telnet console are
off, so Scrapy does the same work as the others and nothing more.
"""
import json

import scrapy


class ItemsSpider(scrapy.Spider):
    name = "items"
    custom_settings = {
        "CONCURRENT_REQUESTS": 64,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 64,
        "CONCURRENT_REQUESTS_PER_IP": 0,
        "DOWNLOAD_DELAY": 0,
        "AUTOTHROTTLE_ENABLED": False,
        "ROBOTSTXT_OBEY": False,
        "HTTPCACHE_ENABLED": False,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": "ERROR",
        "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
    }

    def __init__(self, urls=None, **kwargs):
        super().__init__(**kwargs)
        self.urls_path = urls
        self.items = 0

    def start_requests(self):
        with open(self.urls_path) as f:
            for line in f:
                url = line.strip()
                if url:
                    yield scrapy.Request(url, callback=self.parse)

    def parse(self, response):
        if "id" in json.loads(response.body):
            self.items += 1

    def closed(self, reason):
        print(f"items {self.items}")
