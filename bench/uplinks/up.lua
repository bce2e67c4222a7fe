-- wrk script: HTTP uplinks of 10,000 registered devices (see run.sh).
-- Each request is POST /iot/json?k=load&i=dNNNNN with three measurements.
local n = 0
request = function()
  n = n + 1
  local id = string.format("d%05d", n % 10000)
  local body = string.format('{"t": %d.5, "h": %d, "p": %d}', n % 30, n % 100, 1000 + n % 50)
  return wrk.format("POST", "/iot/json?k=load&i=" .. id, {["Content-Type"] = "application/json"}, body)
end
