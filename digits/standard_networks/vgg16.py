# VGG-16 (Simonyan and Zisserman, 2014): thirteen 3x3 convolutions in five blocks, then three fully
# connected layers; for 224x224 color images. Runs in the trainer's namespace; self.x is NHWC.
# ruff: noqa: F821
class UserModel(Tower):
    @model_property
    def inference(self):
        model = tf.reshape(self.x, shape=[-1, self.input_shape[0], self.input_shape[1], self.input_shape[2]])
        with slim.arg_scope(
            [slim.conv2d, slim.fully_connected],
            weights_initializer=tf.contrib.layers.xavier_initializer(),
            weights_regularizer=slim.l2_regularizer(0.0005),
        ):
            for block, (convs, width) in enumerate([(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)], start=1):
                model = slim.repeat(model, convs, slim.conv2d, width, [3, 3], scope=f"conv{block}")
                model = slim.max_pool2d(model, [2, 2], scope=f"pool{block}")
            model = slim.flatten(model)
            model = slim.fully_connected(model, 4096, scope="fc6")
            model = slim.dropout(model, 0.5, is_training=self.is_training, scope="dropout6")
            model = slim.fully_connected(model, 4096, scope="fc7")
            model = slim.dropout(model, 0.5, is_training=self.is_training, scope="dropout7")
            model = slim.fully_connected(model, self.nclasses, activation_fn=None, scope="fc8")
        return model

    @model_property
    def loss(self):
        loss = digits.classification_loss(self.inference, self.y)
        accuracy = digits.classification_accuracy(self.inference, self.y)
        self.summaries.append(tf.summary.scalar(accuracy.op.name, accuracy))
        return loss
