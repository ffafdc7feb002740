-- A list: GET of the URL as given (/security/ticket?page_size=20), with BENCH_TOKEN as bearer token.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")

wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
