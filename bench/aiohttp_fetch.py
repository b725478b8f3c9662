"""aiohttp_fetch.py - the benchmark's aiohttp peer, compared with `fetchtree
run` (bench/transform.lua): fetch every URL in FILE (one per line) with
CONC (default 64) requests in flight (TCPConnector(limit=CONC), kept-alive
connections), decode each body as JSON, count the items. Prints "items N"
on stdout; exits 1 if any request failed.
    python3 bench/aiohttp_fetch.py FILE [CONC]
"""
import asyncio
import sys

import aiohttp


async def main(path, conc):
    with open(path) as f:
        urls = [line.strip() for line in f if line.strip()]
    todo = iter(urls)
    items = 0
    failed = 0

    async def worker(session):
        nonlocal items, failed
        for url in todo:  # one shared iterator: each URL goes to one worker
            try:
                async with session.get(url) as res:
                    item = await res.json()
                    if res.status == 200 and "id" in item:
                        items += 1
                    else:
                        failed += 1
            except (aiohttp.ClientError, ValueError):
                failed += 1

    connector = aiohttp.TCPConnector(limit=conc)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(conc)))
    print(f"items {items}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 64)))
