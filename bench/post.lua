-- wrk script of the prediction benchmark: POST one JSON body file, report one JSON line.
--   wrk ... -s bench/post.lua URL -- BODY_FILE MODE RUN_NONCE [HEADER_NAME HEADER_VALUE]... [timing]
-- MODE "same": every request sends the file as it is (a cache hit after the first).
-- MODE "vary": the file holds the marker __VARY__ in place of its first value; every request
--   replaces it with a number no other request sends (a per-run nonce from the RUN_NONCE argument,
--   the thread id and a counter), so a prediction cache can never answer it.
-- MODE "get": a plain GET without a body (the platform's framework floor: GET /health).
-- "timing" (last argument) collects each answer's Server-Timing durations (costs wrk some CPU,
--   so the measured runs leave it off).

local marker = "__VARY__"
local threads = {}
local next_id = 1

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local mode, prefix, suffix, counter, timing, nonce = "same", nil, nil, 0, false, 0
-- one flat global array of durations per Server-Timing name (thread:get cannot copy nested tables)
timing_names = ""
answers, cache_hits = 0, 0

function init(args)
  local file = assert(io.open(args[1], "rb"))
  local body = file:read("*a")
  file:close()
  mode = args[2] or "same"
  nonce = tonumber(args[3] or "0")
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  local i = 4
  while args[i] ~= nil and args[i] ~= "timing" do
    wrk.headers[args[i]] = args[i + 1]
    i = i + 2
  end
  timing = args[i] == "timing"
  if mode == "get" then
    wrk.method = "GET"
    wrk.headers["Content-Type"] = nil
    request = nil
  elseif mode == "vary" then
    local at = assert(string.find(body, marker, 1, true), "no " .. marker .. " in the body file")
    prefix = string.sub(body, 1, at - 1)
    suffix = string.sub(body, at + #marker)
  else
    wrk.body = body
    request = nil  -- a static request: wrk formats it once
  end
  if not timing then
    response = nil  -- wrk parses no answer headers
  end
end

function request()
  counter = counter + 1
  -- below 2^53: every such number is a distinct float64 (.5 included)
  return wrk.format(nil, nil, nil, prefix .. string.format("%d%d%09d.5", nonce, id, counter) .. suffix)
end

function response(status, headers, body)
  answers = answers + 1
  if (headers["X-Cache"] or headers["x-cache"]) == "hit" then
    cache_hits = cache_hits + 1
  end
  local value = headers["Server-Timing"] or headers["server-timing"]
  if value == nil then
    return
  end
  for name, dur in string.gmatch(value, "([%w_]+)[^,]-dur=([%d%.]+)") do
    local global = "t_" .. name
    local list = _G[global]
    if list == nil then
      list = {}
      _G[global] = list
      timing_names = timing_names .. name .. " "
    end
    list[#list + 1] = tonumber(dur)
  end
end

local function percentile(sorted, p)
  if #sorted == 0 then
    return -1
  end
  local k = math.max(1, math.ceil(#sorted * p / 100))
  return sorted[k]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"bytes":%d,"errors_connect":%d,"errors_read":%d,' ..
    '"errors_write":%d,"errors_status":%d,"errors_timeout":%d,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
  local merged, n_answers, n_hits = {}, 0, 0
  for _, thread in ipairs(threads) do
    n_answers = n_answers + (thread:get("answers") or 0)
    n_hits = n_hits + (thread:get("cache_hits") or 0)
    for name in string.gmatch(thread:get("timing_names") or "", "%S+") do
      local list = thread:get("t_" .. name)
      merged[name] = merged[name] or {}
      for _, v in ipairs(list or {}) do
        table.insert(merged[name], v)
      end
    end
  end
  local parts = {}
  for name, list in pairs(merged) do
    table.sort(list)
    local sum = 0
    for _, v in ipairs(list) do
      sum = sum + v
    end
    table.insert(parts, string.format('"%s":{"n":%d,"mean":%.4f,"p50":%.4f,"p99":%.4f}', name,
      #list, sum / #list, percentile(list, 50), percentile(list, 99)))
  end
  if n_answers > 0 then
    io.write(string.format('CACHE {"answers":%d,"hits":%d}\n', n_answers, n_hits))
  end
  if #parts > 0 then
    io.write("TIMING {" .. table.concat(parts, ",") .. "}\n")
  end
end
