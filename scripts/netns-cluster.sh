#!/usr/bin/env bash
# A cluster of hosts on one machine: one network namespace per replica, joined by a switch with per-link
# delay and loss. Usage and the reasons behind it: scripts/netns-cluster.py (run with --help).
#   scripts/netns-cluster.sh up --hosts 4 --delay 5 --loss 1
#   ip netns exec themis-0 themis replica --config DIR/cluster.json --id 0
#   scripts/netns-cluster.sh set --delay 1 --loss 0
#   scripts/netns-cluster.sh status
#   scripts/netns-cluster.sh down
exec python3 "$(dirname "$0")/netns-cluster.py" "$@"
