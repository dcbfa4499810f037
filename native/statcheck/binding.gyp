{
  "targets": [
    {
      "target_name": "statcheck",
      "sources": ["src/statcheck.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-ffp-contract=off"],
      "xcode_settings": { "OTHER_CFLAGS": ["-O2", "-ffp-contract=off"] }
    }
  ]
}
