{
  "targets": [
    {
      "target_name": "ddae_kernels",
      "sources": ["native/kernels.cc"],
      "cflags_cc": ["-O3", "-fopenmp", "-std=c++17", "-Wall"],
      "ldflags": ["-fopenmp"],
      "libraries": ["-ldl"],
      "conditions": [
        ["target_arch=='x64'", { "cflags_cc": ["-march=x86-64-v2"] }]
      ]
    }
  ]
}
