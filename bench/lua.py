"""The wrk Lua scripts of the scenarios, built as text with their data inlined.

Every script ends with the same `done()`, which prints one line `BENCH_JSON {...}`: requests,
errors, latency percentiles (microseconds) and, where a script counts them, HTTP statuses and
created cases. Data goes in as Lua long strings ([==[ ... ]==]), so JSON needs no escaping.
"""

from __future__ import annotations

from collections.abc import Iterable

PRELUDE = """
wrk.headers["Accept"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
wrk.headers["Content-Type"] = "application/json"

local threads = {{}}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

statuses = {{}}
created = 0
function count_status(status)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

-- Unique per wrk run and thread, so a warm-up and the measured run never reuse source ids.
stamp = ""
function init(args)
  math.randomseed((tid or 1) * 7919 + os.time())
  stamp = string.format("%x%x", os.time(), math.random(0, 0xffffff))
end
"""

DONE = """
function done(summary, latency, requests)
  local agg, made = {}, 0
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    if s then for k, v in pairs(s) do agg[k] = (agg[k] or 0) + v end end
    made = made + (t:get("created") or 0)
  end
  local parts = {}
  for k, v in pairs(agg) do table.insert(parts, string.format('"%s":%d', k, v)) end
  local e = summary.errors
  io.write(string.format(
    '\\nBENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p95":%d,"p99":%d,"max":%d,"mean":%.1f},' ..
    '"statuses":{%s},"created":%d}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean, table.concat(parts, ","), made))
end
"""


def _long(value: str) -> str:
    assert "]==]" not in value
    return f"[==[{value}]==]"


def _table(values: Iterable[str | int]) -> str:
    items = [str(v) if isinstance(v, int) else _long(v) for v in values]
    return "{" + ",\n".join(items) + "}"


def script(body: str, token: str = "") -> str:
    return PRELUDE.format(token=token) + body + DONE


def bare() -> str:
    return script('wrk.path = "/bare"\n')


def get_one(token: str, ids: list[int]) -> str:
    return script(
        f"""
local ids = {_table(ids)}
function request()
  return wrk.format("GET", "/api/v1/cases/" .. ids[math.random(#ids)])
end
""",
        token,
    )


def paths(token: str, urls: list[str]) -> str:
    """GET one of the given paths at random (search, stats)."""
    return script(
        f"""
local paths = {_table(urls)}
function request()
  return wrk.format("GET", paths[math.random(#paths)])
end
""",
        token,
    )


def create(token: str, path: str, bodies: list[tuple[str, str]], run_id: str) -> str:
    """POST bodies whose unique source id is prefix .. run-thread-counter .. suffix."""
    prefixes = _table(p for p, _ in bodies)
    suffixes = _table(s for _, s in bodies)
    return script(
        f"""
local prefixes = {prefixes}
local suffixes = {suffixes}
local n = 0
function request()
  n = n + 1
  local k = math.random(#prefixes)
  local body = prefixes[k] .. "{run_id}-" .. stamp .. "-" .. n .. suffixes[k]
  return wrk.format("POST", "{path}", nil, body)
end
function response(status, headers, body)
  count_status(status)
end
""",
        token,
    )


def batch(token: str, path: str, bodies: list[tuple[str, str]], run_id: str, size: int) -> str:
    prefixes = _table(p for p, _ in bodies)
    suffixes = _table(s for _, s in bodies)
    return script(
        f"""
local prefixes = {prefixes}
local suffixes = {suffixes}
local n = 0
local items = {{}}
function request()
  n = n + 1
  for i = 1, {size} do
    local k = math.random(#prefixes)
    items[i] = prefixes[k] .. "{run_id}-" .. stamp .. "-" .. n .. "-" .. i .. suffixes[k]
  end
  return wrk.format("POST", "{path}", nil, '{{"items":[' .. table.concat(items, ",") .. ']}}')
end
function response(status, headers, body)
  count_status(status)
  local made = body:match('"created"%s*:%s*(%d+)')
  if made then created = created + tonumber(made) end
end
""",
        token,
    )


def queue(token: str, filters: list[tuple[str, str]], pages: int) -> str:
    """The triage queue: a filter, then up to `pages` pages by following next_cursor.

    wrk's response() does not say which request it answers, and a cursor only fits a query
    with the same sort: the sort is read back from the cursor (base64 JSON with "s") and the
    next page uses a filter of that sort."""
    by_sort: dict[str, list[str]] = {}
    for path, sort in filters:
        by_sort.setdefault(sort, []).append(path)
    sorts = "{" + ", ".join(f"[ {_long(k)} ] = {_table(v)}" for k, v in by_sort.items()) + "}"
    return script(
        f"""
local filters = {_table(p for p, _ in filters)}
local by_sort = {sorts}
local filter = filters[1]
local cursor, cursor_sort = nil, nil
local page = 0
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local value_of = {{}}
for i = 1, 64 do value_of[alphabet:sub(i, i)] = i - 1 end
local function unbase64(s)
  local out, bits, nbits = {{}}, 0, 0
  for i = 1, #s do
    local v = value_of[s:sub(i, i)]
    if v == nil then return "" end
    bits = bits * 64 + v
    nbits = nbits + 6
    if nbits >= 8 then
      nbits = nbits - 8
      local byte = math.floor(bits / 2 ^ nbits)
      out[#out + 1] = string.char(byte)
      bits = bits - byte * 2 ^ nbits
    end
  end
  return table.concat(out)
end
function request()
  if cursor ~= nil and page < {pages} then
    local same = by_sort[cursor_sort]
    if same ~= nil then
      if not filter:find("sort=" .. cursor_sort, 1, true) then
        filter = same[math.random(#same)]
      end
      page = page + 1
      return wrk.format("GET", filter .. "&cursor=" .. cursor)
    end
  end
  filter = filters[math.random(#filters)]
  cursor = nil
  page = 1
  return wrk.format("GET", filter)
end
function response(status, headers, body)
  count_status(status)
  if status == 200 then
    -- next_cursor follows the 50 items (app/cases/reads.py page_json): looked for in the
    -- page's last bytes only, not matched along the whole page.
    cursor = body:match('"next_cursor"%s*:%s*"([^"]+)"', math.max(1, #body - 1024))
    if cursor ~= nil then
      cursor_sort = unbase64(cursor):match('"s"%s*:%s*"([^"]+)"')
    end
  end
end
""",
        token,
    )
