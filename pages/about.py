"""About page: the framework in a few paragraphs, and the maths of its optimizers and init."""

import streamlit as st

import streamlit_app

streamlit_app.enter()

st.title("About minidl")

st.markdown(r"""
**minidl** is a deep-learning mini-framework written with PyTorch *tensor operations only*:
no `torch.nn`, no autograd, no `torch.optim`.  Every module computes its output in
`forward` and, given the gradient of the loss with respect to that output, returns the
gradient with respect to its input in `backward` — the chain rule, one layer at a time.
The Playground trains these hand-written networks live in your browser session.

- `nn.Linear`: $y = xW^\top + b$; backward $\partial L/\partial W = g^\top x$,
  $\partial L/\partial b = \sum_\text{batch} g$, $\partial L/\partial x = gW$
  (with $g = \partial L/\partial y$);
- `nn.Tanh`, `nn.ReLU`, `nn.Sigmoid`, `nn.Identity`: elementwise $y = f(x)$; backward
  $\partial L/\partial x = g \odot f'(x)$;
- `nn.Sequential`: $f_n(\dots f_1(x))$; backward runs the children in reverse;
- `nn.LossMSE`: $L = \frac1N\sum (\hat y - t)^2$ over all $N$ elements;
  $\partial L/\partial \hat y = 2(\hat y - t)/N$;
- `optim.SGD`, `optim.Adam`, `optim.RMSprop`: own their state and update all parameters in
  place, from the gradients the modules accumulated.

The task: points uniform in the unit square, label 1 inside the disk of radius
$1/\sqrt{2\pi}$ centred at $(\tfrac12, \tfrac12)$ — the disk covers half the square.  The
network outputs two numbers trained towards the one-hot label; its prediction is the larger
one, so the decision boundary is where the *class-1 score* $\hat y_1 - \hat y_0$ crosses 0.
""")

st.header("Optimizers")
st.markdown(r"""
Write $g_t = \nabla_\theta L(\theta_{t-1})$ for the gradient on step $t$'s minibatch and
$\eta$ for the learning rate.  All three match PyTorch's implementations exactly.
""")

st.subheader("SGD with momentum")
# one equation a line, aligned at "=": side by side they overflowed a phone's column
st.latex(r"""\begin{aligned}
b_t &= \mu\, b_{t-1} + g_t \quad (b_0 = 0) \\
\theta_t &= \theta_{t-1} - \eta\, b_t
\end{aligned}""")
st.markdown(r"With momentum $\mu = 0$ this is plain gradient descent, $\theta \leftarrow \theta - \eta g$.")

st.subheader("Adam")
st.latex(r"""\begin{aligned}
m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2
\end{aligned}""")
st.latex(r"""
\theta_t = \theta_{t-1} - \frac{\eta}{1-\beta_1^t}\;
\frac{m_t}{\sqrt{v_t}\,/\sqrt{1-\beta_2^t} + \epsilon}
""")
st.markdown(r"""
$m$ and $v$ are running averages of the gradient and of its square (elementwise), started at
0; dividing by $1-\beta^t$ removes their bias towards 0 in the first steps.  Each parameter
moves by roughly $\eta$ in the direction of its average gradient, whatever the gradient's scale.
""")

st.subheader("RMSProp")
st.latex(r"""\begin{aligned}
v_t &= \rho\, v_{t-1} + (1-\rho)\, g_t^2 \\
\theta_t &= \theta_{t-1} - \eta\, \frac{g_t}{\sqrt{v_t} + \epsilon}
\end{aligned}""")
st.markdown("Adam without the momentum term and without bias correction.")

st.subheader("Weight decay (L2)")
st.latex(r"g_t \leftarrow g_t + \lambda\, \theta_{t-1}")
st.markdown(r"""
Each optimizer above can add $\lambda\theta$ to the gradient before its update — the gradient
of the penalty $\tfrac{\lambda}{2}\lVert\theta\rVert^2$ — which pulls every weight towards 0.
This is PyTorch's `weight_decay` for all three (for Adam the *coupled* form, not AdamW's).
""")

st.subheader("L1 penalty")
st.latex(r"g_t \leftarrow g_t + \lambda_1\, \operatorname{sign}(\theta_{t-1})")
st.markdown(r"""
The subgradient of $\lambda_1 \lVert\theta\rVert_1$ (with $\operatorname{sign}(0) = 0$), added
the same way: it pushes every weight towards 0 by the same step, so weights that matter little
shrink to about 0 and the network becomes sparse (watch the diagram's links thin out).
""")

st.header("Initialisation")
st.markdown(r"""
**Xavier** (the seed report's variant): every weight *and bias* of a `Linear` layer with
$n_\text{in}$ inputs and $n_\text{out}$ outputs is drawn independently from
""")
st.latex(r"\mathcal N\!\left(0,\; \sigma^2 = \frac{2\,\text{gain}}{n_\text{in} + n_\text{out}}\right)")
st.markdown(r"""
so that, for gain 1, activations and gradients keep roughly the same variance from layer to
layer.  (The gain multiplies the *variance*, not the standard deviation.)  **Zero** sets
everything to 0: every unit of a layer then computes the same function and receives the same
gradient, so they never become different — try it in the Playground.
""")

st.header("Live training")
st.markdown("""
The Playground keeps the model, its optimizer and the history in your session and trains in
short chunks of minibatches (about 0.1 s each) between redraws, so moving a slider never
interrupts a run.  Learning rate, optimizer, batch size and epoch budget apply to the running
network; data, architecture, activation and initialisation start a new one.  Every setting is
in the page's URL, so a link reproduces the run exactly — it is deterministic given its seeds.
The Compare page races several settings the same way, side by side from one data draw and one
initialisation, and opens any of them in the Playground with exactly its settings and seeds.
""")
