-- The ceiling: GET of the bare Flask endpoint in the URL, as it is.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")
