
@@LAUNCH@@
echo "[midm] $(date -u +%FT%TZ) $MIDM_STAGE finished"
