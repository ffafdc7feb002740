-- PUT /security/ticket/{id}, cycling over BENCH_IDS: new properties each time.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")

local headers
local n = 0

function init(args)
  ids = load_ids("rotate")
  headers = {
    ["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN"),
    ["Content-Type"] = "application/json",
  }
end

function request()
  n = n + 1
  local body = string.format(
    '{"properties":{"customer_id":"bench-put","conference_id":"conf-%d-%d","title":"Bench update %d"}}',
    thread_index, n, n)
  return wrk.format("PUT", "/security/ticket/" .. next_id(), headers, body)
end
