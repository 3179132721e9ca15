-- wrk.lua - bench/run's wrk script: pre-signed requests, counted answers.
--
-- Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
--
-- wrk -t T -c C -d S --latency -s bench/wrk.lua URL -- FILE PATH MODE T
--
--   FILE  the requests, one per line: "SIGNATURE<TAB>BODY" (bench/run
--         writes it; bodies are one-line JSON)
--   PATH  the path to request
--   MODE  "distinct": thread i of T sends lines i, i+T, i+2T, ... once
--         each, so every request carries another event; when a thread
--         has sent all its lines it stops and the run is marked
--         "exhausted" (bench/run then retries with a longer list);
--         "same": every request sends the first line (duplicates);
--         "get": every request is a GET of PATH without a body.
--   T     wrk's thread count (its -t)
--
-- Signatures go in the X-Signature header. Each thread builds its
-- requests in init(), before wrk starts its clock. done() prints one line
-- "WRKJSON {...}" with wrk's totals, latency percentiles (microseconds),
-- and the threads' own counts: 2xx answers, other answers (the first one's
-- status and body start in "first_bad"), requests handed to wrk.

local threads = {}
local thread_count = 0

function setup(thread)
   thread:set("id", thread_count)
   thread_count = thread_count + 1
   table.insert(threads, thread)
end

function init(args)
   local file, path, mode = args[1], args[2], args[3]
   local nthreads = tonumber(args[4])
   reqs, sent, ok, bad, exhausted, first_bad = {}, 0, 0, 0, 0, ""
   if mode == "get" then
      reqs[1] = wrk.format("GET", path)
      repeat_one = true
      return
   end
   repeat_one = (mode == "same")
   local n = 0
   for line in io.lines(file) do
      if repeat_one or n % nthreads == id then
         local tab = line:find("\t", 1, true)
         reqs[#reqs + 1] = wrk.format("POST", path, {
            ["Content-Type"] = "application/json",
            ["X-Signature"] = line:sub(1, tab - 1)
         }, line:sub(tab + 1))
         if repeat_one then
            break
         end
      end
      n = n + 1
   end
end

function request()
   sent = sent + 1
   if repeat_one then
      return reqs[1]
   end
   local r = reqs[sent]
   if r == nil then
      -- No distinct event left: stop this thread rather than repeat one.
      exhausted = 1
      wrk.thread:stop()
      return reqs[#reqs]
   end
   return r
end

function response(status, headers, body)
   if status >= 200 and status < 300 then
      ok = ok + 1
   else
      bad = bad + 1
      if first_bad == "" then
         first_bad = status .. " " .. string.sub(body or "", 1, 160)
      end
   end
end

local function json_string(s)
   return '"' .. s:gsub('[%c"\\]', function(c)
      return string.format("\\u%04x", c:byte())
   end) .. '"'
end

function done(summary, latency, requests)
   local ok_n, bad_n, sent_n, exhausted_n, first = 0, 0, 0, 0, ""
   for _, t in ipairs(threads) do
      ok_n = ok_n + t:get("ok")
      bad_n = bad_n + t:get("bad")
      sent_n = sent_n + t:get("sent")
      exhausted_n = exhausted_n + t:get("exhausted")
      if first == "" then
         first = t:get("first_bad")
      end
   end
   local e = summary.errors
   io.write(string.format(
      'WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,' ..
      '"p99_us":%d,"max_us":%d,"connect":%d,"read":%d,"write":%d,' ..
      '"status":%d,"timeout":%d,"ok":%d,"bad":%d,"sent":%d,' ..
      '"exhausted":%d,"first_bad":%s}\n',
      summary.requests, summary.duration, latency:percentile(50),
      latency:percentile(90), latency:percentile(99), latency.max,
      e.connect, e.read, e.write, e.status, e.timeout, ok_n, bad_n, sent_n,
      exhausted_n, json_string(first)))
end
