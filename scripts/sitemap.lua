-- sitemap.lua - fetch every page a sitemap lists (following sitemap index
-- files), and write url, status, bytes and content type per page.
--
--   fetchtree run scripts/sitemap.lua -- https://example.com/sitemap.xml
local sitemap = assert(arg[1], "usage: fetchtree run scripts/sitemap.lua -- SITEMAP_URL")

return {
  concurrency = 16, retries = 3,
  start = function(emit)
    emit { url = sitemap, meta = { sitemap = true } }
  end,
  on_response = function(res, obj)
    local meta = res.request.meta
    if meta and meta.sitemap then
      -- <urlset> lists pages, <sitemapindex> lists more sitemaps
      local index = #res:xpath("/*[local-name()='sitemapindex']") > 0
      for _, loc in ipairs(res:xpath("//*[local-name()='loc']")) do
        loc = loc:gsub("^%s+", ""):gsub("%s+$", "")
        obj:fetch { url = loc, meta = index and { sitemap = true } or nil }
      end
      return nil
    end
    return {
      url = res.url, status = res.status, bytes = #res.body,
      content_type = res.headers["content-type"],
    }
  end,
  on_error = function(err, req)
    return { url = req.url, status = err.status, error = err.kind, message = err.message }
  end,
}
