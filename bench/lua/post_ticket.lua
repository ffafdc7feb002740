-- POST /security/ticket: a new multi-use ticket each time. The ids created are written, one a
-- line, to BENCH_CREATED_OUT when the run ends, so bench/run.py knows what the run added.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")

local headers
local n = 0
created = {}

function init(args)
  headers = {
    ["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN"),
    ["Content-Type"] = "application/json",
  }
end

function request()
  n = n + 1
  local body = string.format(
    '{"type":"MULTI_USE_TICKET","properties":{"customer_id":"bench-post-%d-%d","conference_id":"conf-%d","title":"Bench"}}',
    thread_index, n, n)
  return wrk.format("POST", "/security/ticket", headers, body)
end

function response(status, headers, body)
  count_response(status, body)
  if status == 200 and body then
    local id = string.match(body, '"id"%s*:%s*"([^"]+)"')
    if id then table.insert(created, id) end
  end
end

local common_done = done

function done(summary, latency, requests)
  local out = io.open(os.getenv("BENCH_CREATED_OUT"), "w")
  for _, thread in ipairs(bench_threads) do
    for _, id in ipairs(thread:get("created") or {}) do out:write(id, "\n") end
  end
  out:close()
  common_done(summary, latency, requests)
end
