package model

import "github.com/netmamba/netmamba/kernels"

func kernelsNorm(L, E int, x, w, y, rstd []float32) {
	kernels.AddRMSNormForward(L, E, x, nil, 1, x, w, normEps, y, rstd)
}
