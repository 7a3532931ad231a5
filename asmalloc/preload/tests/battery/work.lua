-- Lua work for the battery: tables, string patterns, gsub, table.sort,
-- string.format, table.concat. Usage: lua5.4 work.lua CORPUS OUTPUT
local input, output = arg[1], arg[2]
local f = assert(io.open(input, "rb"))
local text = f:read("a")
f:close()

local freq, order, total = {}, {}, 0
for w in text:lower():gmatch("%a+") do
  total = total + 1
  if not freq[w] then
    freq[w] = 0
    order[#order + 1] = w
  end
  freq[w] = freq[w] + 1
end
table.sort(order, function(a, b)
  if freq[a] ~= freq[b] then return freq[a] > freq[b] end
  return a < b
end)

local titled, subs = text:gsub("(%a)(%a*)", function(a, b) return a:upper() .. b end)
local function hash(s)
  local h = 5381
  for i = 1, #s do h = (h * 33 + s:byte(i)) % 4294967296 end
  return h
end

local lines = {}
for i, w in ipairs(order) do
  lines[#lines + 1] = string.format("%d %s %d %08x", i, w, freq[w], hash(w))
end
local out = assert(io.open(output, "wb"))
out:write(table.concat(lines, "\n"), "\n")
out:close()

local top = {}
for i = 1, 5 do top[#top + 1] = order[i] .. "=" .. freq[order[i]] end
print(string.format("%d words, %d distinct, %d substitutions", total, #order, subs))
print("top: " .. table.concat(top, " "))
print(string.format("hash of titled text: %08x", hash(titled)))
