"""FLOPs per element of the non-GEMM operators: modelling conventions, written out once.

One multiply-accumulate is 2 FLOPs; exp, tanh, rsqrt and a division count 1 each.
"""

# mean (1 add) + variance (subtract, square, add: 3) + normalise (subtract, multiply by the
# reciprocal std: 2) + affine (multiply, add: 2)
LAYERNORM = 8
# mean of squares (square, add: 2) + normalise (multiply by rsqrt: 1) + scale (1)
RMSNORM = 4
# scale by 1/sqrt(d) (1) + running max (1) + subtract (1) + exp (1) + sum (1) + divide (1)
SOFTMAX = 6
# tanh approximation 0.5*x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x^3))):
# x^3 (2) + *0.044715 (1) + +x (1) + *sqrt(2/pi) (1) + tanh (1) + +1 (1) + *x (1) + *0.5 (1)
GELU = 9
# x * sigmoid(x) = x / (1 + exp(-x)): exp (1) + add (1) + divide (1) + multiply (1)
SILU = 4
RELU = 1
TANH = 1
ADD = 1

ACTIVATIONS = {"gelu": GELU, "silu": SILU, "relu": RELU, "tanh": TANH}

# Transcendental function evaluations (exp, tanh, erf, sigmoid's exp) per element: the work a
# CPU's vector units or a GPU's special-function units do, apart from FLOPs (efficiency.py).
TRANSCENDENTALS = {"gelu": 1, "silu": 1, "relu": 0, "tanh": 1}
SOFTMAX_TRANSCENDENTALS = 1  # one exp an element
LSTM_CELL_TRANSCENDENTALS = 5  # three sigmoids, the candidate tanh and tanh(c)
HIGHWAY_GATE_TRANSCENDENTALS = 1  # the gate's sigmoid
NORMS = {"layernorm": LAYERNORM, "rmsnorm": RMSNORM}

# learned parameters per channel: layer norm has scale and shift, RMS norm only scale
NORM_PARAMS_PER_CHANNEL = {"layernorm": 2, "rmsnorm": 1}

# batch norm at inference folds into one multiply and one add per element (running stats)
BATCHNORM = 2

# one LSTM cell update per hidden unit, after the gate GEMMs: input, forget and output gates
# sigmoid (3 x 3: exp, add, divide), candidate tanh (1), c = f*c + i*g (3), h = o*tanh(c) (2)
LSTM_CELL = 15
# highway layer gate: sigmoid (3) + y = t*h + (1-t)*x (4)
HIGHWAY_GATE = 7

# local response normalisation over `size` channels: square (1) + window sum (size) + scale
# and bias (2) + power (1) + divide (1): LRN_BASE + size FLOPs an element
LRN_BASE = 5

# logit soft-capping c * tanh(x / c) (Gemma 2): divide (1) + tanh (1) + multiply (1)
SOFTCAP = 3
SOFTCAP_TRANSCENDENTALS = 1

# a LoRA adapter's output scaled by alpha / r and added to its projection's (PEFT's LoraLayer
# forward, `result + lora_B(lora_A(dropout(x))) * scaling`): multiply (1) + add (1)
LORA_SCALE_ADD = 2
