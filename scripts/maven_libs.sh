# Jars of a Maven pom, fetched once from Maven Central and cached: sourced by scripts/kafka.sh
# (the broker) and scripts/connect.sh (Kafka Connect). Nothing is built:
# `mvn dependency:copy-dependencies` copies the pom's runtime dependencies. The cache is
# ${AW_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/asset-worker}/<name>-<pom digest>/libs, complete
# only when its stamp exists; once there, nothing is fetched again. The sourcing script
# defines die().

maven_cache_root="${AW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/asset-worker}"

# maven_libs_dir NAME POM: the jars' directory for this pom's content.
maven_libs_dir() {
	echo "$maven_cache_root/$1-$(sha256sum "$2" | cut -c1-12)/libs"
}

# maven_fetch NAME POM WHAT: fetches the jars unless cached; WHAT names them in messages.
maven_fetch() {
	local libs stamp tmp
	libs="$(maven_libs_dir "$1" "$2")"
	stamp="$libs/.complete"
	[[ -f "$stamp" ]] && return 0
	command -v mvn >/dev/null 2>&1 || die "no mvn (Maven); run scripts/install-deps.sh"
	mkdir -p "$(dirname "$libs")"
	tmp="$(mktemp -d "$(dirname "$libs")/fetch.XXXXXX")"
	echo "$(basename "$0"): fetching $3 from Maven Central (once; cached in $(dirname "$libs"))" >&2
	if ! mvn -q -B -f "$2" dependency:copy-dependencies -DincludeScope=runtime \
		-DoutputDirectory="$tmp" >"$tmp.log" 2>&1; then
		rm -rf "$tmp"
		die "could not fetch $3 with Maven (Maven Central unreachable and nothing cached?): $(grep -m 1 -E 'ERROR' "$tmp.log" | cut -c1-300)"
	fi
	rm -f "$tmp.log"
	touch "$tmp/.complete"
	rm -rf "$libs"
	mv "$tmp" "$libs"
}

# maven_classpath NAME POM WHAT: fetches if need be, then prints the class path (dir/*).
maven_classpath() {
	maven_fetch "$@"
	echo "$(maven_libs_dir "$1" "$2")/*"
}
