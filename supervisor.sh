#!/usr/bin/env bash
# tandem supervisor: role mode as galph (add --sync-via-git to take turns through the remote).
exec "${TANDEM_PYTHON:-python3}" -m tandem supervisor "$@"
