# gawk work for the battery: associative arrays, split, gsub, sprintf,
# asorti and output redirection. Usage: gawk -f words.awk -v out=FILE CORPUS
{
	line = tolower($0)
	gsub(/[^a-z]+/, " ", line)
	n = split(line, w, " ")
	for (i = 1; i <= n; i++) {
		freq[w[i]]++
		total++
		if (i < n)
			pair[w[i] " " w[i + 1]]++
	}
	lines++
	chars += length($0)
}
END {
	m = asorti(freq, keys)
	for (i = 1; i <= m; i++)
		printf "%s %d %s\n", keys[i], freq[keys[i]], toupper(substr(keys[i], 1, 1)) > out
	close(out)
	best = ""
	for (p in pair)
		if (pair[p] > pair[best] || (pair[p] == pair[best] && p < best))
			best = p
	printf "%d lines, %d chars, %d words, %d distinct, %d pairs\n", lines, chars, total, m, length(pair)
	printf "most frequent pair: %s (%d)\n", best, pair[best]
}
