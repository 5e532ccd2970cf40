{
  "targets": [
    {
      "target_name": "ddae_kernels",
      "sources": [
        "native/addon.cc",
        "native/common.cc",
        "native/blas.cc",
        "native/conv2d.cc",
        "native/conv2d-direct.cc",
        "native/group-norm.cc",
        "native/binary.cc",
        "native/reduce.cc",
        "native/copy.cc",
        "native/softmax.cc",
        "native/adam-ema.cc"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-O3", "-fno-trapping-math", "-fopenmp", "-std=c++20", "-Wall"],
      "ldflags": ["-fopenmp"],
      "libraries": ["-ldl"],
      "conditions": [
        ["target_arch=='x64'", { "cflags_cc": ["-march=x86-64-v2"] }]
      ]
    }
  ]
}
