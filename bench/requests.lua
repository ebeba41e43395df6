-- Sends, per thread, the requests listed in <dir>/t<thread>.txt, in order, each once.
-- A line: METHOD <tab> PATH <tab> TOKEN (or -) <tab> BODY (or empty).
-- Arguments after "--": <dir> <expected status, 0 for "any 2xx"> <wrap: 1 if the list may repeat>
-- done() prints one line "BENCH_RESULT {json}" for bench/load.py.

local shared = dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "threads.lua")
setup = shared.setup

local queue, size, index, expected
local wrapped = false
exhausted = 0
unexpected = 0

function init(args)
  local dir = args[1]
  expected = tonumber(args[2])
  queue = {}
  for line in io.lines(dir .. "/t" .. tid .. ".txt") do
    local method, path, token, body = line:match("^(%u+)\t([^\t]*)\t([^\t]*)\t(.*)$")
    local headers = {}
    if token ~= "-" then headers["Authorization"] = "Token " .. token end
    if body == "" then
      body = nil
    else
      headers["Content-Type"] = "application/json"
    end
    queue[#queue + 1] = wrk.format(method, path, headers, body)
  end
  size = #queue
  index = 0
  if expected == 0 then
    response = nil -- wrk then skips parsing; statuses > 399 still count in errors.status
  end
end

function request()
  index = index + 1
  if index > size then
    wrapped = true
    index = 1
  end
  if wrapped then
    exhausted = exhausted + 1 -- a request sent again: fine for reads, not for codes
  end
  return queue[index]
end

function response(status, headers, body)
  if status ~= expected then
    unexpected = unexpected + 1
  end
end

function done(summary, latency, per_thread)
  shared.report(summary, {
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max,
  })
end
