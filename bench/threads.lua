-- What bench/requests.lua and bench/pair.lua share: wrk's threads, each numbered (tid) so that
-- it reads its own lane file, and the one line "BENCH_RESULT {json}" that done() prints for
-- bench/load.py. Each script loads it with dofile, from its own folder.

local M = {threads = {}}

function M.setup(thread)
  M.threads[#M.threads + 1] = thread
  thread:set("tid", #M.threads)
end

-- The sum over the threads of one of their global counters.
function M.total(name)
  local sum = 0
  for _, thread in ipairs(M.threads) do
    sum = sum + thread:get(name)
  end
  return sum
end

-- latency: {mean_us, p50_us, p90_us, p99_us, max_us}; extra: more {key, number} pairs.
function M.report(summary, latency, extra)
  local e = summary.errors
  local fields = {
    {"requests", summary.requests}, {"duration_us", summary.duration},
    {"connect", e.connect}, {"read", e.read}, {"write", e.write}, {"status", e.status},
    {"timeout", e.timeout}, {"mean_us", latency[1]}, {"p50_us", latency[2]},
    {"p90_us", latency[3]}, {"p99_us", latency[4]}, {"max_us", latency[5]},
    {"exhausted", M.total("exhausted")}, {"unexpected", M.total("unexpected")},
  }
  for _, pair in ipairs(extra or {}) do
    fields[#fields + 1] = pair
  end
  local parts = {}
  for _, pair in ipairs(fields) do
    local value = pair[2]
    local number = value == math.floor(value) and string.format("%d", value)
      or string.format("%.1f", value)
    parts[#parts + 1] = string.format('"%s": %s', pair[1], number)
  end
  io.write("BENCH_RESULT {" .. table.concat(parts, ", ") .. "}\n")
end

return M
