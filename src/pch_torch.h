// Precompiled header for the LibTorch-dependent library: LibTorch's headers are
// the bulk of compile time, so they are parsed once per target.
#pragma once
#include <torch/torch.h>
#include <string>
#include <vector>
#include <memory>
