/* vmm/reaper.c: the housekeeping timer (ttl, idle policy, memory reclaim). */
#pragma once

#include "vmm-internal.h"

void vmm__reaper_start(struct vmm *vmm);
void vmm__reaper_stop(struct vmm *vmm);
