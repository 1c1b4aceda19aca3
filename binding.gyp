{
  "targets": [
    {
      "target_name": "nin_conv",
      "sources": ["native/nin_conv.c"],
      "cflags": ["-O3", "-std=c11"],
      "libraries": ["-lopenblas"]
    }
  ]
}
