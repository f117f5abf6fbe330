# A small fully convolutional network for segmentation: every pixel gets a class.
# self.x is NHWC; self.y is the label array [N, H, W, 1] of class indices (a generic dataset's masks).
# Two poolings shrink the image by 4; a transposed convolution brings the scores back to full size, so
# image sides should be multiples of 4. The loss is the cross-entropy over every pixel.
# ruff: noqa
# fmt: off
class UserModel(Tower):

    @model_property
    def inference(self):
        x = self.x / 255.0
        with slim.arg_scope([slim.conv2d, slim.conv2d_transpose],
                            weights_initializer=tf.contrib.layers.xavier_initializer(),
                            weights_regularizer=slim.l2_regularizer(0.0005)):
            model = slim.conv2d(x, 32, [3, 3], scope='conv1')
            model = slim.max_pool2d(model, [2, 2], scope='pool1')
            model = slim.conv2d(model, 64, [3, 3], scope='conv2')
            model = slim.max_pool2d(model, [2, 2], scope='pool2')
            model = slim.conv2d(model, 128, [3, 3], scope='conv3')
            # One score map per class, at a quarter of the size, then back to the image's size.
            model = slim.conv2d(model, self.nclasses, [1, 1], activation_fn=None, scope='score')
            model = slim.conv2d_transpose(model, self.nclasses, [8, 8], stride=4, activation_fn=None, scope='upscore')
        return model

    @model_property
    def loss(self):
        labels = tf.cast(tf.squeeze(self.y, axis=[3]), tf.int32)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(logits=self.inference, labels=labels))
        correct = tf.equal(tf.cast(tf.argmax(self.inference, 3), tf.int32), labels)
        accuracy = tf.reduce_mean(tf.cast(correct, tf.float32), name='accuracy')
        self.summaries.append(tf.summary.scalar(accuracy.op.name, accuracy))
        return loss
