#!/usr/bin/env bash
# Placeholder: the local stack (issue 7) replaces this script.
echo "make token: not yet available (local stack, issue 7)" >&2
exit 1
