-- wrk script of bench/wrk-counts.mjs's scenario (d): POST /upload with a 64 KiB body, as the
-- shared bench's wrk-report.lua sends it.
wrk.method = "POST"
wrk.body = string.rep("x", 65536)
wrk.headers["Content-Type"] = "application/octet-stream"
