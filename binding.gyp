{
  "variables": {
    "nin_dnnl%": 0
  },
  "targets": [
    {
      "target_name": "nin_conv",
      "sources": ["native/nin_conv.c", "native/nin_eltwise.c", "native/nin_scratch.c"],
      "cflags": ["-O3", "-std=c11", "-fopenmp", "-ffp-contract=off", "-fno-math-errno"],
      "libraries": ["-lopenblas", "-fopenmp"],
      "conditions": [
        ["nin_dnnl==1", {
          "sources": ["native/nin_dnnl.c", "native/nin_wino5.c"],
          "defines": ["NIN_DNNL"],
          "libraries": ["-ldnnl"]
        }]
      ]
    }
  ]
}
