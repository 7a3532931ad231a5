# Ruby work for the battery: hashes, arrays, blocks, JSON, Digest, Set.
# Usage: ruby work.rb CORPUS OUTPUT
require 'json'
require 'digest'
require 'set'

text = File.read(ARGV[0])
words = text.downcase.scan(/[a-z]+/)
freq = Hash.new(0)
words.each { |w| freq[w] += 1 }
sorted = freq.sort_by { |w, c| [-c, w] }
groups = freq.keys.group_by(&:length).transform_values(&:size).sort.first(6)
seen = Set.new
firsts = words.select { |w| seen.add?(w) }.first(5)
doc = sorted.first(500).map { |w, c| { 'word' => w, 'n' => c, 'sha' => Digest::SHA256.hexdigest(w)[0, 12] } }
json = JSON.pretty_generate(doc)
raise 'json round trip' unless JSON.parse(json) == doc
titled = text.gsub(/\b(\w)(\w*)/) { "#{$1.upcase}#{$2}" }

File.write(ARGV[1], sorted.map { |w, c| "#{w} #{c}" }.join("\n") + "\n" + json)
puts "#{words.size} words, #{freq.size} distinct"
puts "top: #{sorted.first(5).map { |w, c| "#{w}=#{c}" }.join(' ')}"
puts "lengths: #{groups.inspect}"
puts "first: #{firsts.join(' ')}"
puts "md5 titled: #{Digest::MD5.hexdigest(titled)}"
