# GoogLeNet (Szegedy et al., 2014), simplified: the stem, nine inception modules with the paper's widths,
# global average pooling; without the two auxiliary classifiers. For 224x224 color images.
# Runs in the trainer's namespace; self.x is NHWC.
# ruff: noqa: F821
def inception(net, widths, scope):
    """One inception module: 1x1, 1x1->3x3, 1x1->5x5 and pool->1x1 branches, concatenated on channels."""
    b1, b3r, b3, b5r, b5, bp = widths
    with tf.variable_scope(scope):
        branch1 = slim.conv2d(net, b1, [1, 1], scope="1x1")
        branch3 = slim.conv2d(slim.conv2d(net, b3r, [1, 1], scope="3x3_reduce"), b3, [3, 3], scope="3x3")
        branch5 = slim.conv2d(slim.conv2d(net, b5r, [1, 1], scope="5x5_reduce"), b5, [5, 5], scope="5x5")
        pool = slim.max_pool2d(net, [3, 3], 1, padding="SAME", scope="pool")
        branch_pool = slim.conv2d(pool, bp, [1, 1], scope="pool_proj")
        return tf.concat([branch1, branch3, branch5, branch_pool], axis=3)


class UserModel(Tower):
    @model_property
    def inference(self):
        model = tf.reshape(self.x, shape=[-1, self.input_shape[0], self.input_shape[1], self.input_shape[2]])
        with slim.arg_scope(
            [slim.conv2d, slim.fully_connected],
            weights_initializer=tf.contrib.layers.xavier_initializer(),
            weights_regularizer=slim.l2_regularizer(0.0002),
        ):
            with slim.arg_scope([slim.max_pool2d], padding="SAME"):
                model = slim.conv2d(model, 64, [7, 7], 2, scope="conv1")
                model = slim.max_pool2d(model, [3, 3], 2, scope="pool1")
                model = tf.nn.local_response_normalization(model, name="norm1")
                model = slim.conv2d(model, 64, [1, 1], scope="conv2_reduce")
                model = slim.conv2d(model, 192, [3, 3], scope="conv2")
                model = tf.nn.local_response_normalization(model, name="norm2")
                model = slim.max_pool2d(model, [3, 3], 2, scope="pool2")
                model = inception(model, (64, 96, 128, 16, 32, 32), "inception_3a")
                model = inception(model, (128, 128, 192, 32, 96, 64), "inception_3b")
                model = slim.max_pool2d(model, [3, 3], 2, scope="pool3")
                model = inception(model, (192, 96, 208, 16, 48, 64), "inception_4a")
                model = inception(model, (160, 112, 224, 24, 64, 64), "inception_4b")
                model = inception(model, (128, 128, 256, 24, 64, 64), "inception_4c")
                model = inception(model, (112, 144, 288, 32, 64, 64), "inception_4d")
                model = inception(model, (256, 160, 320, 32, 128, 128), "inception_4e")
                model = slim.max_pool2d(model, [3, 3], 2, scope="pool4")
                model = inception(model, (256, 160, 320, 32, 128, 128), "inception_5a")
                model = inception(model, (384, 192, 384, 48, 128, 128), "inception_5b")
            model = tf.reduce_mean(model, axis=[1, 2], name="global_pool")
            model = slim.dropout(model, 0.6, is_training=self.is_training, scope="dropout")
            model = slim.fully_connected(model, self.nclasses, activation_fn=None, scope="classifier")
        return model

    @model_property
    def loss(self):
        loss = digits.classification_loss(self.inference, self.y)
        accuracy = digits.classification_accuracy(self.inference, self.y)
        self.summaries.append(tf.summary.scalar(accuracy.op.name, accuracy))
        return loss
