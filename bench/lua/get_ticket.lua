-- GET /security/ticket/{id}, cycling over BENCH_IDS, with BENCH_TOKEN as bearer token.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")

local headers

function init(args)
  ids = load_ids("rotate")
  headers = { ["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN") }
end

function request()
  return wrk.format("GET", "/security/ticket/" .. next_id(), headers)
end
