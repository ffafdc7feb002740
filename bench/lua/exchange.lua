-- The ticket exchange: POST /security/oauth/token grant_type=ticket, no client authentication.
-- BENCH_MODE=rotate cycles over BENCH_IDS (multi-use tickets); BENCH_MODE=walk uses each id once
-- (single-use tickets), and answers past the end of the list show up as "exhausted".
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")

local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }

function init(args)
  walking = os.getenv("BENCH_MODE") == "walk"
  ids = load_ids(walking and "walk" or "rotate")
end

function request()
  return wrk.format("POST", "/security/oauth/token", headers, "grant_type=ticket&ticket=" .. next_id())
end
