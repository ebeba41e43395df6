-- The two-step login as a client does it: POST login/, read the ticket from the answer, then
-- POST login/verify/ with it and a code. One connection per thread, so the two alternate.
-- <dir>/t<thread>.txt lines: USERNAME <tab> PASSWORD <tab> CODE
-- Arguments after "--": <dir>. done() prints "BENCH_RESULT {json}" with the latency of whole
-- pairs (from sending login/ to the answer of login/verify/), measured with CLOCK_MONOTONIC.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

local shared = dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "threads.lua")
setup = shared.setup

local logins, codes, size, index, ticket, started
local wrapped = false
exhausted = 0
unexpected = 0
pairs_done = 0
latencies = {}

function init(args)
  local dir = args[1]
  logins, codes = {}, {}
  local headers = {["Content-Type"] = "application/json"}
  for line in io.lines(dir .. "/t" .. tid .. ".txt") do
    local username, password, code = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
    local body = string.format('{"username":"%s","password":"%s"}', username, password)
    logins[#logins + 1] = wrk.format("POST", "/auth/otp/login/", headers, body)
    codes[#codes + 1] = code
  end
  size = #logins
  index = 0
end

function request()
  local headers = {["Content-Type"] = "application/json"}
  if ticket ~= nil then
    local body = string.format('{"ticket":"%s","token":"%s"}', ticket, codes[index])
    return wrk.format("POST", "/auth/otp/login/verify/", headers, body)
  end
  index = index + 1
  if index > size then
    wrapped = true
    index = 1
  end
  if wrapped then
    exhausted = exhausted + 1
  end
  started = now_us()
  return logins[index]
end

function response(status, headers, body)
  if ticket == nil then
    ticket = body:match('"ticket":"([^"]+)"')
    if status ~= 200 or ticket == nil then
      unexpected = unexpected + 1
      ticket = nil
    end
    return
  end
  ticket = nil
  if status == 200 then
    pairs_done = pairs_done + 1
    latencies[#latencies + 1] = math.floor(now_us() - started)
  else
    unexpected = unexpected + 1
  end
end

function done(summary, latency, per_thread)
  local all = {}
  for _, thread in ipairs(shared.threads) do
    for _, value in ipairs(thread:get("latencies")) do
      all[#all + 1] = value
    end
  end
  table.sort(all)
  local function pct(p)
    if #all == 0 then return 0 end
    return all[math.max(1, math.ceil(#all * p / 100))]
  end
  local sum = 0
  for _, value in ipairs(all) do sum = sum + value end
  shared.report(
    summary,
    {#all > 0 and sum / #all or 0, pct(50), pct(90), pct(99), all[#all] or 0},
    {{"pairs", shared.total("pairs_done")}}
  )
end
