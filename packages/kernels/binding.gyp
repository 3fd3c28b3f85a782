{
  "targets": [
    {
      "target_name": "papo_kernels",
      "sources": ["native/addon.cc", "native/sgemm.cc", "native/pool.cc", "native/rows.cc", "native/attend.cc", "native/attention.cc", "native/optim.cc"],
      "cflags_cc": ["-O3", "-std=c++17", "-ffp-contract=off", "-fno-exceptions"],
      "cflags_cc!": ["-fno-rtti"],
      "ldflags": ["-pthread"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
