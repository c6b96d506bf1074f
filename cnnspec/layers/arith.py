"""Output-size arithmetic shared by convolution and pooling kinds (Keras' own formulas)."""

from __future__ import annotations

from cnnspec.layers.registry import ShapeError


def conv_length(size: int, kernel: int, stride: int, dilation: int, padding: str, axis: str) -> int:
    """Length of one spatial axis after a convolution (``valid``, ``same`` or ``causal``)."""
    if padding == "valid":
        effective = dilation * (kernel - 1) + 1
        out = (size - effective) // stride + 1
        if out < 1:
            raise ShapeError(
                f"expected the {axis} ({size}) to be at least the effective kernel size "
                f"({effective}) with padding 'valid'; the output would be {max(out, 0)}",
                param="kernel_size",
                hint="use padding: same, a smaller kernel, or a larger input",
            )
        return out
    return (size - 1) // stride + 1


def pool_length(size: int, pool: int, stride: int, padding: str, axis: str) -> int:
    """Length of one spatial axis after pooling."""
    if padding == "valid":
        out = (size - pool) // stride + 1
        if out < 1:
            raise ShapeError(
                f"expected the {axis} ({size}) to be at least pool_size ({pool}) with padding "
                f"'valid'; the output would be {max(out, 0)}",
                param="pool_size",
                hint="use padding: same, a smaller pool_size, or remove a pooling layer",
            )
        return out
    return (size - 1) // stride + 1


def transpose_length(
    size: int,
    kernel: int,
    stride: int,
    dilation: int,
    padding: str,
    output_padding: int | None,
    axis: str = "length",
) -> int:
    """Length of one spatial axis after a transposed convolution (Keras' deconv formula)."""
    kernel = kernel + (kernel - 1) * (dilation - 1)
    if output_padding is None:
        if padding == "valid":
            return size * stride + max(kernel - stride, 0)
        return size * stride
    pad = kernel // 2 if padding == "same" else 0
    out = (size - 1) * stride + kernel - 2 * pad + output_padding
    # TensorFlow runs a transposed convolution as the gradient of the forward one, which must
    # map the output back to the input: with padding 'same', ceil(out / stride) positions. An
    # even (dilated) kernel with output_padding 0 misses by one, and only the running model
    # fails ("could not create a primitive descriptor"); Keras builds the layer without a word.
    back = -(-out // stride)
    if padding == "same" and back != size:
        dilated = "" if dilation == 1 else " after dilation"
        raise ShapeError(
            f"expected the output {axis} of a 'same' transposed convolution to map back to the "
            f"input's {axis} ({size}) with strides {stride}; kernel size {kernel}{dilated} with "
            f"output_padding {output_padding} gives {out}, and ceil({out} / {stride}) = {back}: "
            "TensorFlow cannot run it",
            param="output_padding",
            hint="leave output_padding out, or use an odd kernel",
        )
    return out


def spatial_names(rank: int) -> tuple[str, ...]:
    return ("length",) if rank == 1 else ("height", "width", "depth")[:rank]
