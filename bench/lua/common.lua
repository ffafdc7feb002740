-- Shared by every bench script (loaded with dofile): counts non-2xx answers per thread and,
-- when the run ends, prints one line "BENCH_JSON {...}" with the run's numbers for bench/run.py.
-- Environment: BENCH_THREADS (wrk -t), BENCH_IDS (a file of ticket ids, one a line, optional).

bench_threads = {}
local next_index = 0

function setup(thread)
  thread:set("thread_index", next_index)
  next_index = next_index + 1
  table.insert(bench_threads, thread)
end

-- Per-thread globals (read back in done() through thread:get).
non2xx = 0
statuses = {}
error_sample = ""

function count_response(status, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    local key = tostring(status)
    statuses[key] = (statuses[key] or 0) + 1
    if error_sample == "" and body then
      error_sample = string.sub(body, 1, 200)
    end
  end
end

function response(status, headers, body)
  count_response(status, body)
end

-- The ids of BENCH_IDS; mode "rotate": every thread cycles over all of them from its own
-- offset; mode "walk": thread i takes ids i, i+T, i+2T, ... each at most once (single-use).
function load_ids(mode)
  local path = os.getenv("BENCH_IDS")
  local all = {}
  for line in io.lines(path) do
    if line ~= "" then table.insert(all, line) end
  end
  local count = tonumber(os.getenv("BENCH_THREADS") or "1")
  local mine = {}
  if mode == "walk" then
    for i = thread_index + 1, #all, count do table.insert(mine, all[i]) end
  else
    local offset = math.floor(#all * thread_index / count)
    for i = 1, #all do table.insert(mine, all[((i - 1 + offset) % #all) + 1]) end
  end
  return mine
end

ids = {}
position = 0
exhausted = 0

function next_id()
  position = position + 1
  if position > #ids then
    if walking then
      exhausted = exhausted + 1
      return "EXHAUSTED"
    end
    position = 1
  end
  return ids[position]
end

local function json_string(value)
  return '"' .. string.gsub(value, '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end) .. '"'
end

function done(summary, latency, requests)
  local bad, exhausted_total, codes, sample = 0, 0, {}, ""
  for _, thread in ipairs(bench_threads) do
    bad = bad + (thread:get("non2xx") or 0)
    exhausted_total = exhausted_total + (thread:get("exhausted") or 0)
    for code, n in pairs(thread:get("statuses") or {}) do
      codes[code] = (codes[code] or 0) + n
    end
    if sample == "" then sample = thread:get("error_sample") or "" end
  end
  local parts = {}
  for code, n in pairs(codes) do table.insert(parts, json_string(code) .. ":" .. n) end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d,' ..
    '"non2xx":%d,"statuses":{%s},"exhausted":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"error_sample":%s}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max,
    bad, table.concat(parts, ","), exhausted_total,
    e.connect, e.read, e.write, e.status, e.timeout, json_string(sample)))
end
