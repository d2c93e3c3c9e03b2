#!/usr/bin/env bash
# tandem loop: role mode as ralph (add --sync-via-git to take turns through the remote).
exec "${TANDEM_PYTHON:-python3}" -m tandem loop "$@"
