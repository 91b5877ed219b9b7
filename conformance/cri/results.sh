#!/usr/bin/env bash
# results.sh OUT SKIP_TSV HANDLER...: turns each handler's ginkgo JSON report (OUT/HANDLER/
# report.json, written by run.sh) into OUT/summary.tsv (test, then one verdict per handler, then
# a note: the failure message, on one line), OUT/results.md, OUT/totals.txt and OUT/regressions.txt (tests that pass with runc and
# not with berth).
set -euo pipefail
out=$1 skip=$2
shift 2
handlers=("$@")
rm -f "$out/summary.tsv" "$out/results.md" "$out/totals.txt" "$out/regressions.txt"

for h in "${handlers[@]}"; do
	if [ -s "$out/$h/report.json" ]; then
		# One line per test: name, state (passed, failed, skipped, ...), the message on one line.
		jq -r '.[].SpecReports[]? | select(.LeafNodeType == "It")
			| [((.ContainerHierarchyTexts // []) + [.LeafNodeText] | join(" ")),
			   .State,
			   ((.Failure.Message // "") | gsub("[\t\n ]+"; " ") | ltrimstr(" ")
			     # gomega dumps the gRPC status struct after the text, and a message of
			     # its own often repeats the error after "Unexpected error:".
			     | gsub("<\\*status\\.Error \\| 0x[0-9a-f]+>: "; "") | sub(" \\{ s: \\{.*"; "")
			     | sub("(?<a>.) Unexpected error: .*"; "\(.a)") | .[0:400])]
			| @tsv' "$out/$h/report.json" | sort -t$'\t' -k1,1 >"$out/$h/verdicts.tsv"
	else
		: >"$out/$h/verdicts.tsv" # critest did not get as far as a report: see critest.log
	fi
done

awk -F'\t' -v handlers="${handlers[*]}" -v skipfile="$skip" -v out="$out" '
BEGIN {
	nh = split(handlers, H, " ")
	while ((getline line < skipfile) > 0) {
		if (line ~ /^#/ || line ~ /^[ \t]*$/) continue
		split(line, f, "\t"); ns++; SRE[ns] = f[1]; SWHY[ns] = f[2]
	}
	for (i = 1; i <= nh; i++) {
		file = out "/" H[i] "/verdicts.tsv"
		while ((getline line < file) > 0) {
			split(line, f, "\t")
			if (!(f[1] in seen)) { seen[f[1]] = 1; names[++nn] = f[1] }
			st[f[1], i] = f[2]; msg[f[1], i] = f[3]
		}
	}
}
function verdict(s) { return s == "passed" ? "pass" : s == "skipped" ? "skip" : s == "" ? "-" : "FAIL" }
END {
	for (k = 1; k <= nn; k++) {
		n = names[k]; note = ""
		for (i = 1; i <= nh; i++) {
			v = verdict(st[n, i]); V[i] = v; count[i, v]++
		}
		ours = ""
		for (s = 1; s <= ns; s++) if (n ~ SRE[s]) { ours = SWHY[s]; break }
		if (ours != "") note = "skipped here: " ours
		else {
			r = 0; b = 0
			for (i = 1; i <= nh; i++) { if (H[i] == "runc") r = i; if (H[i] == "berth") b = i }
			if (r && b && V[r] == "pass" && V[b] != "pass") {
				note = "berth only: " msg[n, b]; print n > (out "/regressions.txt")
			} else {
				for (i = 1; i <= nh; i++) if (V[i] == "FAIL" || V[i] == "skip") { note = msg[n, i]; break }
				if (note == "" && n ~ / benchmark /) note = "a benchmark: runs only with critest -benchmark"
			}
		}
		line = n
		for (i = 1; i <= nh; i++) line = line "\t" V[i]
		print line "\t" note > (out "/summary.tsv")
		gsub(/\|/, "\\|", n); gsub(/\|/, "\\|", note)
		row = "| " n
		for (i = 1; i <= nh; i++) row = row " | " V[i]
		rows[k] = row " | " note " |"
	}
	md = out "/results.md"
	print "# critest (cri-tools v1.34.0) against containerd 1.6 with each runtime handler\n" > md
	hdr = "| handler | pass | FAIL | skip | seconds |"; print hdr > md; print "|---|---|---|---|---|" > md
	for (i = 1; i <= nh; i++) {
		secs = ""; sf = out "/" H[i] "/seconds"; getline secs < sf
		t = sprintf("| %s | %d | %d | %d | %s |", H[i], count[i, "pass"], count[i, "FAIL"], count[i, "skip"], secs)
		print t > md
		printf "%s: %d passed, %d failed, %d skipped (%ss)\n", H[i], count[i, "pass"], count[i, "FAIL"], count[i, "skip"], secs > (out "/totals.txt")
	}
	h = "\n| test"; sep = "|---"
	for (i = 1; i <= nh; i++) { h = h " | " H[i]; sep = sep "|---" }
	print h " | note |" > md; print sep "|---|" > md
	for (k = 1; k <= nn; k++) print rows[k] > md
}'
touch "$out/regressions.txt" "$out/totals.txt"
