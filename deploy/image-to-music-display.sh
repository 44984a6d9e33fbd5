#!/bin/sh
# The visitor display: wait until the kiosk's status server answers, then open /display in a browser in kiosk
# mode. Started by deploy/image-to-music-display.desktop in the display user's desktop session.
#
#   deploy/image-to-music-display.sh [BASE_URL]        (default http://127.0.0.1:8080)
#
# Environment: IMAGE_TO_MUSIC_TOKEN  the kiosk's status token, if it has one (sent as a header while waiting,
#                                    and given to the page in its URL, which its live updates need: the browser's
#                                    command line then shows it to the users of this machine);
#              IMAGE_TO_MUSIC_BROWSER  the browser command (default: chromium, chromium-browser or google-chrome).
set -u
base=${1:-http://127.0.0.1:8080}
token=${IMAGE_TO_MUSIC_TOKEN:-}

command -v curl >/dev/null 2>&1 || { echo "image-to-music-display: curl is missing (apt install curl)" >&2; exit 1; }
browser=${IMAGE_TO_MUSIC_BROWSER:-}
if [ -z "$browser" ]; then
    for name in chromium chromium-browser google-chrome; do
        if command -v "$name" >/dev/null 2>&1; then browser=$name; break; fi
    done
fi
[ -n "$browser" ] || { echo "image-to-music-display: no browser found (apt install chromium)" >&2; exit 1; }

answers() {      # the token goes to curl on its standard input, not on its command line (ps shows those)
    printf 'Authorization: Bearer %s\n' "$token" | curl -sf -o /dev/null -H @- "$base/health"
}
said=
until answers; do
    [ -n "$said" ] || { echo "image-to-music-display: waiting for $base/health" >&2; said=1; }
    sleep 2
done

url="$base/display${token:+?token=$token}"
# shellcheck disable=SC2086  # the browser command may carry its own options
exec $browser --kiosk --noerrdialogs --disable-infobars --no-first-run --disable-session-crashed-bubble \
    --incognito --check-for-update-interval=31536000 "$url"
