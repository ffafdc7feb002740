-- The client-credentials token: POST <URL path> grant_type=client_credentials&scope=global with
-- HTTP basic auth (BENCH_BASIC = base64 of id:secret). The same script loads the oidc-provider peer.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")

wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=global"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC")
