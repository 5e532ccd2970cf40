{
  "targets": [
    {
      "target_name": "ddae_kernels",
      "sources": ["native/kernels.cc"],
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
