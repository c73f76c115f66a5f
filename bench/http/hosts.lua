-- wrk script for bench/http.sh: GET / with the Host header rotating over the
-- hosts listed (one per line) in the file named by $HOSTS_FILE. The requests
-- are formatted once, up front, so wrk's per-request cost is a table index.
local path = os.getenv("HOSTS_FILE")
if not path then
   error("HOSTS_FILE is not set")
end
local reqs = {}
for line in io.lines(path) do
   if #line > 0 then
      reqs[#reqs + 1] = wrk.format("GET", "/", { Host = line })
   end
end
local n = #reqs
if n == 0 then
   error("no hosts in " .. path)
end
local i = 0

request = function()
   i = i + 1
   if i > n then
      i = 1
   end
   return reqs[i]
end
