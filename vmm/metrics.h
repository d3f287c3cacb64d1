/* vmm/metrics.c: the metrics sampler (sandbox_metrics). */
#pragma once

#include "vmm-internal.h"

void vmm__metrics_start(struct vmm *vmm);
void vmm__metrics_stop(struct vmm *vmm);
