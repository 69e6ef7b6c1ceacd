// The host emulator's cuda_fp16.h: __half and its conversions come from
// cuda_host_emu.h, which the build includes ahead of the module.
#pragma once
