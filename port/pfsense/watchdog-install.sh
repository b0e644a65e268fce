# Install, remove and show the gateway watchdog (dpinger-watchdog.sh).
# Sourced by dpinger-install.sh after common.sh, never run; POSIX sh.
#
# watchdog_install: copies dpinger-watchdog.sh from beside the installer
#   to /usr/local/sbin/ with common.sh inlined (one self-contained file),
#   and adds a once-a-minute cron item to pfSense's configuration through
#   install_cron_job() (services.inc), so that it survives a reboot and a
#   config restore.  Each part a no-op when already done; a failure undoes
#   what it did and returns 1.
# watchdog_remove: takes the cron item out of the configuration and removes
#   the script and its state.  A no-op when not installed.
# watchdog_status: whether it is installed, its last run, its last repairs.

WD_SRC=$(dirname "$0")/dpinger-watchdog.sh
WD_PATH=/usr/local/sbin/dpinger-watchdog.sh
WD_SCRIPT=$ROOT$WD_PATH
WD_CRON="$WD_PATH -q"

# PHP that leaves exactly one cron item for the watchdog, every minute
# ($1: true), or none (false), then exits 0 only if the configuration
# says so.  install_cron_job(command, active, minute, hour, mday, month,
# wday, who) in services.inc finds an item by a substring of its command,
# and writes the configuration and /etc/crontab only when it changed.
wd_cron_php() {
	cat <<EOF
ini_set("display_errors", "stderr");
require_once("config.inc");
require_once("functions.inc");
require_once("services.inc");
function wd_items(\$exact) {
	global \$config;
	\$n = 0;
	if (!isset(\$config["cron"]["item"]) ||
	    !is_array(\$config["cron"]["item"]))
		return 0;
	foreach (\$config["cron"]["item"] as \$it)
		if (strstr(\$it["command"], "$WD_PATH") && (!\$exact ||
		    (\$it["command"] == "$WD_CRON" && \$it["minute"] == "*" &&
		    \$it["hour"] == "*" && \$it["who"] == "root")))
			\$n++;
	return \$n;
}
\$want = $1 ? 1 : 0;
if (wd_items(false) != \$want || wd_items(true) != \$want) {
	for (\$i = 0; \$i < 10 && wd_items(false) > 0; \$i++)
		install_cron_job("$WD_PATH", false);
	if (\$want)
		install_cron_job("$WD_CRON", true, "*", "*", "*", "*", "*",
		    "root");
}
exit(wd_items(false) == \$want && wd_items(true) == \$want ? 0 : 1);
EOF
}

# The watchdog with common.sh in place of the lines that source it.
wd_inlined() {
	_common=$(dirname "$0")/common.sh
	awk -v common="$_common" '
	/^# >>> common.sh/ {
		print
		while ((getline l < common) > 0)
			print l
		skip = 1
		next
	}
	/^# <<< common.sh/ { skip = 0 }
	!skip
	' "$WD_SRC"
}

watchdog_install() {
	if [ ! -r "$WD_SRC" ]; then
		warn "$WD_SRC is missing: copy it beside this script"
		return 1
	fi
	_new=$WD_SCRIPT.build.$$
	_made_script=no
	[ -f "$WD_SCRIPT" ] || _made_script=yes
	# shellcheck disable=SC2016
	if ! wd_inlined >"$_new" || ! sh -n "$_new" ||
	    grep -qF '. "$COMMON"' "$_new"; then
		rm -f "$_new"
		warn "cannot build the watchdog from $WD_SRC"
		return 1
	fi
	if [ -f "$WD_SCRIPT" ] && cmp -s "$_new" "$WD_SCRIPT"; then
		say "watchdog $WD_PATH already installed"
	elif atomic_copy "$_new" "$WD_SCRIPT" 755; then
		say "installed the watchdog as $WD_PATH"
	else
		rm -f "$_new"
		warn "cannot install the watchdog as $WD_SCRIPT"
		return 1
	fi
	rm -f "$_new"
	if ! php -r "$(wd_cron_php true)" >/dev/null 2>&1; then
		warn "cannot add the watchdog's cron item" \
		    "(install_cron_job() in services.inc)"
		[ "$_made_script" = yes ] && rm -f "$WD_SCRIPT"
		return 1
	fi
	say "cron runs the watchdog every minute ($WD_CRON)"
	return 0
}

watchdog_remove() {
	if ! php -r "$(wd_cron_php false)" >/dev/null 2>&1; then
		warn "cannot remove the watchdog's cron item" \
		    "(install_cron_job() in services.inc)"
		return 1
	fi
	if [ -f "$WD_SCRIPT" ]; then
		rm -f "$WD_SCRIPT"
		say "removed the watchdog ($WD_PATH) and its cron item"
	fi
	rm -rf "$ROOT/var/run/dpinger-watchdog" \
	    "$ROOT/var/run/dpinger-watchdog.lock" \
	    "$ROOT/conf/dpinger-selfheal/watchdog"
	return 0
}

watchdog_status() {
	if [ ! -f "$WD_SCRIPT" ]; then
		say "watchdog: not installed"
		return 0
	fi
	if grep -qs "$WD_PATH" "$ROOT/etc/crontab"; then
		say "watchdog: $WD_PATH, run by cron every minute"
	else
		say "watchdog: $WD_PATH, NOT in /etc/crontab"
	fi
	ROOT=$ROOT /bin/sh "$WD_SCRIPT" --status
}
