{
  "targets": [
    {
      "target_name": "splitnve_rawlink",
      "sources": ["native/rawlink.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
