-- wrk script for bench/compare.sh: replays pre-signed callbacks (gen.mjs), each thread its own
-- share, and keeps every 200 answer's body (one a line) for verify.mjs.
-- args: REQUESTS_FILE THREADS OUT_PREFIX
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

local reqs, n, out, other = {}, 0, nil, 0
function init(args)
  local path, threads = args[1], tonumber(args[2])
  local i = 0
  for line in io.lines(path) do
    if i % threads == id then
      local tab = line:find("\t", 1, true)
      reqs[#reqs + 1] = wrk.format("POST", line:sub(1, tab - 1),
        { ["Content-Type"] = "application/json" }, line:sub(tab + 1))
    end
    i = i + 1
  end
  out = io.open(args[3] .. "-" .. id .. ".txt", "w")
  out:setvbuf("line")
end

function request()
  n = n + 1
  if n > #reqs then
    io.stderr:write("load.lua: thread " .. id .. " ran out of requests\n")
    n = 1
  end
  return reqs[n]
end

function response(status, headers, body)
  if status == 200 then out:write(body, "\n") else other = other + 1 end
end

function done(summary, latency, requests)
  io.write(string.format("wrk: requests %d in %.3f s, errors connect %d read %d write %d timeout %d status %d, p50 %.2f ms, p99 %.2f ms\n",
    summary.requests, summary.duration / 1e6, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, summary.errors.status,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
