# A small ResNet (He et al., 2015): ResNet-18's layout of basic residual blocks with batch normalization,
# widths 64-128-256-512, global average pooling. Works on small images (28x28) and large ones (224x224):
# the stem only downsamples images wider than 64 pixels. Runs in the trainer's namespace; self.x is NHWC.
# ruff: noqa: F821
def residual_block(net, width, stride, scope):
    """Two 3x3 convolutions plus the input (projected by a 1x1 convolution when the shape changes)."""
    with tf.variable_scope(scope):
        shortcut = net
        if stride != 1 or net.shape[-1] != width:
            shortcut = slim.conv2d(net, width, [1, 1], stride, activation_fn=None, scope="shortcut")
        net = slim.conv2d(net, width, [3, 3], stride, scope="conv1")
        net = slim.conv2d(net, width, [3, 3], activation_fn=None, scope="conv2")
        return tf.nn.relu(net + shortcut)


class UserModel(Tower):
    @model_property
    def inference(self):
        model = tf.reshape(self.x, shape=[-1, self.input_shape[0], self.input_shape[1], self.input_shape[2]])
        model = model * (1.0 / 64)  # mean-subtracted pixels of 0..255 to about unit scale
        with slim.arg_scope(
            [slim.conv2d],
            weights_initializer=tf.variance_scaling_initializer(2.0),
            weights_regularizer=slim.l2_regularizer(0.0001),
            normalizer_fn=slim.batch_norm,  # DIGITS' batch_norm, fused for these 4-D outputs
            normalizer_params={"is_training": self.is_training, "decay": 0.9, "epsilon": 1e-5, "scale": True},
        ):
            if self.input_shape[1] > 64:
                model = slim.conv2d(model, 64, [7, 7], 2, scope="conv1")
                model = slim.max_pool2d(model, [3, 3], 2, padding="SAME", scope="pool1")
            else:
                model = slim.conv2d(model, 64, [3, 3], scope="conv1")
            for stage, width in enumerate([64, 128, 256, 512], start=1):
                stride = 1 if stage == 1 else 2
                model = residual_block(model, width, stride, f"block{stage}a")
                model = residual_block(model, width, 1, f"block{stage}b")
        model = tf.reduce_mean(model, axis=[1, 2], name="global_pool")
        return slim.fully_connected(model, self.nclasses, activation_fn=None, scope="fc")

    @model_property
    def loss(self):
        loss = digits.classification_loss(self.inference, self.y)
        accuracy = digits.classification_accuracy(self.inference, self.y)
        self.summaries.append(tf.summary.scalar(accuracy.op.name, accuracy))
        return loss
