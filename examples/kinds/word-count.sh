#!/bin/sh
# Reads {"text": "..."} on stdin, reports progress, logs, and answers the word count.
# A real program would read $JOBDECK_TOKEN_FILE for a current access token whenever it
# calls $SUPABASE_URL as the user.
set -eu
input=$(cat)
echo '{"progress": 0.1, "message": "reading"}'
words=$(printf '%s' "$input" | wc -w)
echo "counted $words words (of the JSON input)" >&2
echo '{"log": "almost there", "level": "info"}'
echo '{"progress": 1.0, "message": "done"}'
echo "{\"result\": {\"words\": $words}}"
