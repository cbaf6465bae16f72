# bash completion for drover(1): verbs, their flags, and deployment, agent
# and service names asked from the coordinator (DROVER_ADDR, DROVER_TOKEN or
# DROVER_TOKEN_FILE, as drover itself uses them). Installed by the
# drover-coordinator package in /usr/share/bash-completion/completions.

_drover_ids() { # KIND: deployments | agents | services
	local out
	case $1 in
	deployments) out=$(drover history --json --limit 50 2>/dev/null) ;;
	agents) out=$(drover agents --json 2>/dev/null) ;;
	services) out=$(drover agents --json 2>/dev/null) ;;
	esac
	if [[ $1 == services ]]; then
		printf '%s\n' "$out" | grep -o '"service": *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/' | sort -u
	else
		printf '%s\n' "$out" | grep -o '"id": *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/'
	fi
}

_drover() {
	local cur prev verb i
	COMPREPLY=()
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	local verbs="agents enroll-tokens plan deploy status history pause resume promote promote-release abort rollback approve deny environments logs drift converge events audit version"
	local globals="--coordinator --token --token-file --cacert -v --version --help"
	verb=
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--coordinator | --token | --token-file | --cacert) ((i++)) ;;
		-*) ;;
		*) verb=${COMP_WORDS[i]} && break ;;
		esac
	done
	case $prev in
	--coordinator | --token) return 0 ;;
	--token-file | --cacert) mapfile -t COMPREPLY < <(compgen -f -- "$cur") && return 0 ;;
	--host) mapfile -t COMPREPLY < <(compgen -W "$(_drover_ids agents)" -- "$cur") && return 0 ;;
	--lines | --limit | --tail | --to | --override) return 0 ;;
	esac
	if [[ -z $verb ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$verbs $globals" -- "$cur")
		return 0
	fi
	local flags="" words=""
	case $verb in
	agents) flags="--json" words="accept reject" ;;
	plan) words="check" ;;
	deploy) flags="--wait --dry-run --json" ;;
	status) flags="--json" words="$(_drover_ids deployments)" ;;
	history) flags="--json --limit" ;;
	pause | resume | abort | rollback) words="$(_drover_ids deployments)" ;;
	promote | promote-release) flags="--to --wait --json --override" words="$(_drover_ids deployments)" ;;
	approve) flags="--comment --json" words="$(_drover_ids deployments)" ;;
	deny) flags="--reason --json" words="$(_drover_ids deployments)" ;;
	environments) flags="--json" ;;
	logs) flags="--host --lines --follow --json" words="$(_drover_ids services)" ;;
	drift) flags="--json" ;;
	converge) flags="--all" words="$(_drover_ids services)" ;;
	events) flags="--follow --json --deployment --kind --tail" ;;
	audit) flags="--json --limit" ;;
	esac
	if [[ $verb == agents && ($prev == accept || $prev == reject) ]]; then
		words="$(_drover_ids agents)"
	fi
	if [[ $prev == --deployment ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$(_drover_ids deployments)" -- "$cur")
		return 0
	fi
	if [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$flags" -- "$cur")
	elif [[ $verb == deploy || ($verb == plan && $prev == check) ]]; then
		mapfile -t COMPREPLY < <(compgen -f -X '!*.@(yaml|yml|json)' -- "$cur"; compgen -d -- "$cur")
	else
		mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
	fi
	return 0
}
complete -F _drover drover
